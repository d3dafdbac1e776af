from tests.support.fakeopenai.process import main

main()
