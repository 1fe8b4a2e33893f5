import sys; from lore_daemon.cli import main; sys.exit(main())
