"""The compare runner: echolab's three concurrency models under identical load, the article's
claims checked against what this machine measures (python3 -m compare), the 10,000-connection
hold against one model (python3 -m compare.c10k) and each model beside the production server
that implements it (python3 -m compare.peers)."""
