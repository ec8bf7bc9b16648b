#!/usr/bin/python3
"""oslab-osc: `openstack ARGS` without paying for the client's start on every call.

Under TCG one `openstack` process spends 40-50 s importing the client and loading its
commands before it sends a request, and `oslab verify` makes about fifty calls.

``oslab-osc.py serve DIR`` imports the client and loads every command once, then listens on
``DIR/osc.sock`` and forks a child per call (``DIR/osc.served`` counts them). The child takes
the caller's stdin, stdout and stderr (passed over the socket), its environment (the openrc's
OS_* variables) and its working directory, runs the client's ``main(ARGS)`` and sends back
the exit code.

``DIR/bin/openstack`` (a link to this file) is the caller: it behaves as ``openstack ARGS``
(same output, same exit code). When no server answers (not started, or still loading) it runs
the real ``openstack`` itself. A caller that dies (killed at its timeout) ends its child.
DIR is root's alone: the environment carries the openrc's password.
"""

import json
import os
import select
import shutil
import signal
import socket
import sys
import threading

SOCKET = "osc.sock"
PIDFILE = "osc.pid"
SERVED = "osc.served"  # how many calls it took, rewritten after each
FDS = 3  # stdin, stdout, stderr


def serve(directory: str) -> int:
    import logging

    import openstackclient.shell  # type: ignore[import-not-found]  # on the node

    run = openstackclient.shell.main
    # Load every command's module now: `openstack complete` builds every command's parser.
    # A forked child then finds them imported.
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(devnull, 1)
    try:
        run(["complete"])
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    logging.getLogger().handlers.clear()  # each call's client adds its own console handler
    path = os.path.join(directory, SOCKET)
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # only now: a caller before this runs `openstack` itself
    listener.listen(8)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies: nobody waits for a child
    with open(os.path.join(directory, PIDFILE), "w") as pid:
        pid.write(f"{os.getpid()}\n")
    print(f"oslab-osc: serving on {path}", flush=True)
    served = 0
    while True:
        conn, _ = listener.accept()
        served += 1
        with open(os.path.join(directory, SERVED), "w") as count:
            count.write(f"{served}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os._exit(child(conn, run))
        conn.close()


def receive(conn: socket.socket) -> tuple[dict, list[int]]:  # type: ignore[type-arg]
    """The caller's request: its length and three descriptors, then the JSON itself."""
    header, fds, _flags, _addr = socket.recv_fds(conn, 32, FDS)
    size, _, data = header.partition(b"\n")
    while len(data) < int(size):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data.decode()), fds


def child(conn: socket.socket, run) -> int:  # type: ignore[no-untyped-def]
    request, fds = receive(conn)
    if len(fds) != FDS:
        return 2
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])

    def watch() -> None:  # the caller went away (killed at its timeout): stop the call
        select.select([conn], [], [])
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    try:
        code = run(request["args"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # the client's own errors end in main; say anything else
        print(f"oslab-osc: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(f"{code or 0}\n".encode())
    return 0


def real_openstack(args: list[str]) -> int:
    """Run the real client: the first ``openstack`` on PATH that is not this file's link."""
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and os.path.abspath(d) != here)
    found = shutil.which("openstack", path=path)
    if found is None:
        print("oslab-osc: openstack: command not found", file=sys.stderr)
        return 127
    os.execv(found, ["openstack", *args])
    return 127  # not reached


def call(directory: str, args: list[str]) -> int:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(os.path.join(directory, SOCKET))
    except OSError:
        return real_openstack(args)
    data = json.dumps({"args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(conn, [f"{len(data)}\n".encode()], [0, 1, 2])
    conn.sendall(data)
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            print("oslab-osc: the call ended without an exit code", file=sys.stderr)
            return 1
        answer += chunk
    return int(answer)


def main() -> int:
    if os.path.basename(sys.argv[0]) == "openstack":  # DIR/bin/openstack
        bin_dir = os.path.dirname(os.path.abspath(sys.argv[0]))
        return call(os.path.dirname(bin_dir), sys.argv[1:])
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        return serve(sys.argv[2])
    print("usage: oslab-osc.py serve DIR, or DIR/bin/openstack ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
