"""Run moto's server on 127.0.0.1 for the Rust tests.

Prints the port on one line once the server listens, then serves until its
standard input reaches end of file, so that it stops when the process that
started it exits, or until MAX_LIFETIME_SECONDS have passed.

Usage: python scripts/moto_server.py [--port PORT]
"""

import argparse
import logging
import sys
import threading

from moto.server import ThreadedMotoServer

# An upper bound in case the parent never closes the pipe.
MAX_LIFETIME_SECONDS = 30 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="TCP port on 127.0.0.1 (default 0: a free port chosen by the system)",
    )
    args = parser.parse_args()

    # Werkzeug logs every request to stderr, which the tests show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)

    stdin_closed = threading.Event()

    def wait_for_end_of_input() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        stdin_closed.set()

    threading.Thread(target=wait_for_end_of_input, daemon=True).start()
    stdin_closed.wait(timeout=MAX_LIFETIME_SECONDS)
    # The server thread is a daemon thread, so returning stops it.


if __name__ == "__main__":
    main()
