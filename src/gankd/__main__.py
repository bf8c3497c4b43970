from gankd.cli import main

main()
