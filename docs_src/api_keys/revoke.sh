errorkit keys revoke "${TOKEN%%.*}"  # the key id: the token's part before the dot
errorkit keys disable-workspace ws_1 --reason "payment overdue"
errorkit keys disable-workspace ws_1 --enable
