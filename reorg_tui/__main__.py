from reorg_tui.cli import main

raise SystemExit(main())
