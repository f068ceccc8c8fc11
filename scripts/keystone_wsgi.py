"""Serves Keystone (the `keystone` package of the interpreter running this) on HOST PORT
with Python's own threaded WSGI server: enough for tests, no uWSGI to build. The
configuration comes from OS_KEYSTONE_CONFIG_FILES, as under any WSGI server."""

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

host, port = sys.argv[1], int(sys.argv[2])
# Keystone's application parses sys.argv as its own options: leave it only the program.
sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402


class ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


make_server(host, port, application, server_class=ThreadedServer, handler_class=QuietHandler).serve_forever()
