from spotecs.cli import main

main()
