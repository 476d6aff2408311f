"""ASCII authentication (-Y FILE): the first request must be a `set` carrying `user pass`."""
import pytest


@pytest.fixture
def auth_server(make_server, tmp_path):
    path = tmp_path / "auth"
    path.write_text("user1:pass1\nuser2:pass2\n")
    return make_server("-Y", str(path))


def test_unauthenticated_commands_are_refused(auth_server):
    with auth_server.connect() as c:
        c.send(b"get foo\r\n")
        assert c.recv_line() == b"CLIENT_ERROR unauthenticated\r\n"
        c.send(b"version\r\n")
        assert c.recv_line() == b"CLIENT_ERROR unauthenticated\r\n"


@pytest.mark.parametrize(
    "payload,reply",
    [
        (b"set a 0 0 11\r\nuser1 wrong\r\n", b"CLIENT_ERROR authentication failure\r\n"),
        (b"set a 0 0 5\r\nuser1\r\n", b"CLIENT_ERROR bad authentication token format\r\n"),
        (b"set a 0 0 11\r\nuser1 pass1X\r\n", b"CLIENT_ERROR bad command line termination\r\n"),
    ],
)
def test_failed_authentication(auth_server, payload, reply):
    with auth_server.connect() as c:
        c.send(payload)
        assert c.recv_line() == reply
        c.send(b"get a\r\n")
        assert c.recv_line() == b"CLIENT_ERROR unauthenticated\r\n"


@pytest.mark.parametrize("user,password", [(b"user1", b"pass1"), (b"user2", b"pass2")])
def test_successful_authentication_then_normal_service(auth_server, user, password):
    with auth_server.connect() as c:
        token = user + b" " + password
        c.send(b"set x 0 0 %d\r\n%s\r\n" % (len(token), token))
        assert c.recv_line() == b"STORED\r\n"
        assert c.roundtrip(b"get x\r\nset b 0 0 1\r\nx\r\nget b\r\n") == (
            b"END\r\nSTORED\r\nVALUE b 0 1\r\nx\r\nEND\r\n"
        )


def test_long_garbage_closes(auth_server):
    with auth_server.connect() as c:
        c.send(b"x" * 3000)
        c.assert_closed()


def test_authentication_is_per_connection(auth_server):
    with auth_server.connect() as a, auth_server.connect() as b:
        a.send(b"set x 0 0 11\r\nuser1 pass1\r\n")
        assert a.recv_line() == b"STORED\r\n"
        b.send(b"get x\r\n")
        assert b.recv_line() == b"CLIENT_ERROR unauthenticated\r\n"


def test_unreadable_auth_file_stops_the_server(binary, tmp_path):
    import subprocess

    r = subprocess.run([binary, "-p", "0", "-U", "0", "-u", "root", "-Y", str(tmp_path / "missing")],
                       capture_output=True, timeout=10)
    assert r.returncode != 0
    assert b"Could not open authfile" in r.stdout + r.stderr
