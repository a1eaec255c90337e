"""Apache httpd (mpm_prefork, mpm_worker) and nginx, the production servers that implement
echolab's models: started by compare/peers/servers.py, benchmarked by python3 -m compare.peers."""
