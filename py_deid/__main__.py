"""python -m py_deid"""

from .cli import main

raise SystemExit(main())
