errorkit keys issue --workspace ws_1 --scope campaigns:write
TOKEN=$(errorkit keys issue --workspace ws_2 --project proj_9 --scope campaigns:read --plan Growth --expires 30d)
errorkit keys list --workspace ws_2
errorkit keys list --workspace ws_2 --json
errorkit keys revoke "${TOKEN%%.*}"             # the key id: the token up to its dot
errorkit keys list --workspace ws_2
errorkit keys disable-workspace ws_1 --reason "payment overdue"
errorkit keys list --workspace ws_1
errorkit keys disable-workspace ws_1 --enable
errorkit keys revoke ek_0000000000000000        # no such key: exit 1
