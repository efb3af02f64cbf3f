"""`python -m errorkit`: see `errorkit._cli`."""

from errorkit._cli import main

raise SystemExit(main())
