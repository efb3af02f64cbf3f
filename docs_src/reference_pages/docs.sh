errorkit docs envelope_api > errors.md                  # a catalog's page: Markdown on standard output
errorkit docs detail_api --html -o errors.html          # one self-contained HTML page
errorkit docs app:kit -o catalog.md                     # your kit's catalog: every code it defines
errorkit docs app:app --html -o app-errors.html         # your app's page, as its /errors/ serves it
errorkit docs app:app                                   # the same page in Markdown
