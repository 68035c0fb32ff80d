"""Network settings for firewalls: validation, the saved file, the CLI, and TLS through a private CA
(a real HTTPS fake hub whose certificate is signed by a CA made with the openssl tool)."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest

from app.cli.main import main
from app.core.models.download import DownloadError, download_model
from app.core.models.download_target import make_target
from app.core.models.hub_client import fetch_file_metadata
from app.core.models.network import (
    NetworkSettings,
    NetworkSettingsError,
    OfflineError,
    apply_network_settings,
    load_network_settings,
    make_client,
    network_settings_path,
    save_network_settings,
)
from tests.hub_server import FILE, REPO, SPEC, FakeHub, sha256_of
from tests.socket_guard import SocketLog

pytest_plugins = ("tests.download_support",)  # fixtures: starter_sha, fake_hub, no_sockets


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint": "hub.example.com"}, "hub mirror URL 'hub.example.com' is not valid"),
        ({"endpoint": "ftp://hub.example.com"}, "use a full address such as https://"),
        ({"endpoint": "https://"}, "is not valid"),
        ({"endpoint": "https://hub.example.com:port"}, "is not valid"),
        ({"endpoint": "https://hub.example.com/?x=1"}, "remove the port 0, ? or #"),
        ({"proxy": "proxy.corp:3128"}, "such as http://proxy.example.com:3128"),
        ({"ca_bundle": "/no/such/ca.pem"}, "CA bundle /no/such/ca.pem does not exist"),
        ({"token": "hf_abc def"}, "access token contains spaces"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_message(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(NetworkSettingsError, match=message.replace("?", r"\?")):
        NetworkSettings(**changes).validated()  # type: ignore[arg-type]


def test_a_ca_bundle_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("these are not certificates\n")
    with pytest.raises(NetworkSettingsError, match="holds no readable PEM certificates"):
        NetworkSettings(ca_bundle=str(bogus)).validated()


def test_settings_round_trip_through_a_private_file(data_dir: Path) -> None:
    saved = save_network_settings(
        NetworkSettings(
            endpoint=" https://mirror.corp/ ", proxy="http://proxy.corp:3128", token="hf_secret1"
        )
    )

    assert saved.endpoint == "https://mirror.corp"  # trimmed
    assert load_network_settings() == saved
    mode = stat.S_IMODE(network_settings_path().stat().st_mode)
    assert mode & 0o077 == 0, "the file holding the token must be private to its owner"


def test_a_damaged_or_hand_edited_file_falls_back_safely(data_dir: Path) -> None:
    path = network_settings_path()
    path.write_text("{not json")
    assert load_network_settings() == NetworkSettings()
    path.write_text(json.dumps({"endpoint": 42, "proxy": "http://p:1", "offline": "yes"}))
    loaded = load_network_settings()
    assert loaded.endpoint == "" and loaded.proxy == "http://p:1" and loaded.offline is False


def test_environment_endpoint_and_offline_flag_are_respected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = NetworkSettings()
    assert settings.effective_endpoint() == "https://mirror.example"
    assert settings.is_offline()
    assert NetworkSettings(endpoint="https://own.example").effective_endpoint() == (
        "https://own.example"
    )


def test_cli_network_saves_shows_and_masks(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["network", "--proxy", "http://proxy.corp:3128", "--token", "hf_abcdefgh12",
         "--offline", "on", "--ca-bundle", "system"]
    )  # fmt: skip
    out, err = capsys.readouterr()

    assert status == 0 and "saved to" in err
    assert "http://proxy.corp:3128" in out and "hf_…12" in out and "hf_abcdefgh12" not in out
    assert load_network_settings().offline is True

    assert main(["network", "--proxy", "nonsense"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("error: The proxy URL 'nonsense' is not valid")
    assert load_network_settings().proxy == "http://proxy.corp:3128"  # unchanged

    assert main(["network", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["offline"] == "on" and shown["certificates"].startswith("the operating system")


# -- TLS through a private CA ----------------------------------------------------------------


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1, made by the real openssl tool."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl tool is needed to make a test CA")
    folder = tmp_path_factory.mktemp("ca")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=LeanCoder Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}


@pytest.fixture
def tls_hub(private_ca: dict[str, Path], starter_path: Path, starter_sha: str) -> Iterator[FakeHub]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(private_ca["cert"], private_ca["key"])
    hub = FakeHub(tls=context)
    hub.add(REPO, FILE, starter_path, sha256=starter_sha)
    with hub.running():
        yield hub


@pytest.mark.parametrize("trust", ["", "system"])
def test_an_untrusted_certificate_is_explained(
    tls_hub: FakeHub, tmp_path: Path, trust: str
) -> None:
    settings = NetworkSettings(endpoint=tls_hub.endpoint, ca_bundle=trust)

    with pytest.raises(DownloadError, match=r"TLS certificate of 127\.0\.0\.1 is not trusted"):
        download_model(SPEC, network=settings, cache_dir=tmp_path)

    assert tls_hub.requests == []


def test_a_custom_ca_bundle_makes_the_mirror_trusted(
    tls_hub: FakeHub, private_ca: dict[str, Path], tmp_path: Path, starter_sha: str
) -> None:
    settings = NetworkSettings(endpoint=tls_hub.endpoint, ca_bundle=str(private_ca["ca"]))

    result = download_model(SPEC, network=settings, cache_dir=tmp_path)

    assert result.sha256 == starter_sha == sha256_of(result.path)
    assert tls_hub.endpoint.startswith("https://") and len(tls_hub.seen("cdn", "GET")) == 1


# -- offline mode, one layer at a time ---------------------------------------------------------
# Three layers stand between offline mode and the network: download_model's own check, the hub
# client's check before it builds a request, and the refusing transport installed into
# huggingface_hub. Each test below reaches one layer with the ones in front of it out of the way,
# so deleting that layer makes its test fail (the message names which layer answered).


def test_offline_layer_1_download_model_refuses_before_any_lookup(
    fake_hub: FakeHub, tmp_path: Path, no_sockets: SocketLog
) -> None:
    offline = NetworkSettings(endpoint=fake_hub.endpoint, offline=True)

    with pytest.raises(OfflineError, match=f"will not download {re.escape(SPEC)}"):
        download_model(SPEC, network=offline, cache_dir=tmp_path)

    assert no_sockets.connects == [] and fake_hub.requests == []


def test_offline_layer_2_the_hub_client_refuses_to_look_up(
    fake_hub: FakeHub, no_sockets: SocketLog
) -> None:
    offline = NetworkSettings(endpoint=fake_hub.endpoint, offline=True)

    with pytest.raises(OfflineError, match=f"will not look up {re.escape(SPEC)}"):
        fetch_file_metadata(make_target(REPO, FILE), offline)

    assert no_sockets.connects == [] and fake_hub.requests == []


def test_offline_layer_3_the_transport_refuses_every_request(
    fake_hub: FakeHub, tmp_path: Path, no_sockets: SocketLog
) -> None:
    """What slipped past both checks (a new code path, huggingface_hub's own helpers) still
    never reaches the network: our client and huggingface_hub's session both refuse."""
    offline = NetworkSettings(endpoint=fake_hub.endpoint, offline=True)
    url = f"{fake_hub.endpoint}/{REPO}/resolve/main/{FILE}"

    with make_client(offline) as client, pytest.raises(OfflineError, match="did not contact"):
        client.head(url)
    apply_network_settings(offline)
    try:
        with pytest.raises(OfflineError, match=r"did not contact 127\.0\.0\.1"):
            huggingface_hub.get_session().get(url)
        with pytest.raises(OfflineError, match="did not contact"):
            huggingface_hub.get_hf_file_metadata(url, endpoint=fake_hub.endpoint)
    finally:
        apply_network_settings(NetworkSettings(endpoint=fake_hub.endpoint))

    assert no_sockets.connects == [] and no_sockets.lookups == []
    assert fake_hub.requests == []
