errorkit contract check app:app errors.lock.json        # exit 1 on a breaking change
