"""The test suite runs with the network disabled (tests/conftest.py), and that guard really works."""

import socket
import urllib.request

import pytest
from conftest import NetworkDisabled


def test_a_connection_off_this_machine_fails():
    with pytest.raises(NetworkDisabled, match="1.1.1.1"):
        socket.create_connection(("1.1.1.1", 443), timeout=1)


def test_a_name_lookup_fails():
    with pytest.raises(NetworkDisabled, match="huggingface.co"):
        socket.getaddrinfo("huggingface.co", 443)


def test_http_fails():
    with pytest.raises(Exception) as info:
        urllib.request.urlopen("https://huggingface.co/gpt2", timeout=1)
    assert "offline" in str(info.value)


def test_loopback_stays_open():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=1)
        client.close()
    finally:
        server.close()


def test_the_course_needs_no_network():
    """Loading the zoo, booting a bridge and building a Hugging Face model offline all work."""
    from course_utils import zoo

    model = zoo.load("attn_only_2l")
    from course_utils.bridge import to_bridge

    bridge = to_bridge(model)
    assert bridge is not None
