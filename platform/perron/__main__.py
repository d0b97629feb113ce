from perron.cli import main

main()
