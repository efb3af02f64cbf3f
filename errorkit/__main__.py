"""`python -m errorkit`: see `errorkit._app.cli`."""

from errorkit._app.cli import main

raise SystemExit(main())
