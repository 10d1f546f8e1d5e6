import ipaddress
import socket

import pytest
import torch


class NetworkDisabled(RuntimeError):
    """Raised by any attempt, inside the test process, to reach a host other than this machine."""


def _is_loopback(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """The course must need no network at run time: every test runs with connections off this
    machine refused (and name lookups of other hosts failing) inside the test process. Loopback
    stays open, for the Jupyter kernels and the browser that some tests drive."""
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)

    def refuse(address):
        raise NetworkDisabled(f"the tests run offline; something tried to connect to {address!r}")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            refuse(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            refuse(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host if not isinstance(host, bytes) else host.decode()):
            refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    patches = {"connect": connect, "connect_ex": connect_ex}
    for name, fn in patches.items():
        setattr(socket.socket, name, fn)
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex
        socket.getaddrinfo = real_getaddrinfo


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
