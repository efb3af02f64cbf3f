errorkit contract save app:app -o errors.lock.json      # write the contract of app.py's app
git add errors.lock.json                                # and commit it with the code
