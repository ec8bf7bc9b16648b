from oslab.cli import main

main()
