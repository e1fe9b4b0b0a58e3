from tui_trainer.cli.app import main

main()
