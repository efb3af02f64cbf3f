errorkit docs envelope_api > errors.md          # Markdown on standard output
errorkit docs detail_api --html -o errors.html  # one self-contained HTML page
errorkit docs generic --format problem --doc-url 'https://docs.example.com/errors/{code}' -o generic.md
errorkit docs myapp.main:kit -o kit-errors.md   # your kit's catalog (myapp/main.py below)
errorkit docs myapp.main:app -o app-errors.md   # what your app can answer with
errorkit docs --write pages                     # the built-in catalogs, Markdown and HTML
