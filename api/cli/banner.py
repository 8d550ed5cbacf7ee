"""What ``wangge up`` prints before serving: where the console is, how to sign in, what runs."""

from __future__ import annotations


def public_host(host: str) -> str:
    """Return the host a browser on this machine should use (a wildcard address is not one)."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def up_banner(host: str, port: int, root_path: str = "", simulating: bool | None = None) -> list[str]:
    """Return the lines ``wangge up`` prints: console address, token hint, docs, the simulator's state.

    Parameters
    ----------
    host, port
        Where the server listens.
    root_path
        The prefix a proxy serves the app under (``WANGGE_API_ROOT_PATH``), if any.
    simulating
        True: the simulator runs; False: it was turned off or the store is not a demo
        store; None: say nothing about it.
    """
    base = f"http://{public_host(host)}:{port}{root_path.rstrip('/')}"
    lines = [
        f"Console:  {base}/console",
        "Sign in:  make a token with  wangge token create --role dispatcher --label <your name>  "
        "and paste it on the sign-in page (admin, planner, worker ... work too)",
        f"API docs: {base}/docs",
    ]
    if simulating is True:
        lines.append(
            "Simulator: the demo city runs live (wangge simulate; start with --no-simulate to turn it off)"
        )
    elif simulating is False:
        lines.append("Simulator: off (run  wangge simulate  beside the server to bring a demo city to life)")
    return lines
