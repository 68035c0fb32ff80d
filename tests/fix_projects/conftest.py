"""The bundled buggy projects fail their own tests on purpose: the suite never collects them."""

collect_ignore_glob = ["*"]
