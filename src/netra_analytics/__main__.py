from netra_analytics.cli import main

raise SystemExit(main())
