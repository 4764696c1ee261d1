"""Embeddings on Ray Data: the encoder loaded once per actor, a feature store that resumes by sha256."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from aiornot.apps import cli, ray_embed
from aiornot.apps.batch import BatchError
from conftest import image_shard

ROOT = Path(__file__).resolve().parents[1]

# A fake encoder defined in __main__ (Ray pickles it by value): mean colour and a count of the
# actors that built one, so the test sees the encoder is loaded once per actor, not per batch.
SCRIPT = textwrap.dedent("""
    import functools, sys, json
    import numpy as np
    from aiornot.apps import batch, ray_embed
    from aiornot.model.encoders import FeatureStore

    class MeanColour:
        id = "mean-colour"
        def __init__(self, log):
            open(log, "a").write("built\\n")
        def embed(self, images):
            means = np.stack([p.reshape(-1, 3).mean(axis=0) for p in images]).astype(np.float32)
            return {"embeds": means / np.linalg.norm(means, axis=1, keepdims=True)}

    factory = functools.partial(MeanColour, sys.argv[3])
    with batch.ray_session():  # one local Ray for both runs (each run alone would start its own)
        first, again = (ray_embed.embed_with_ray(sys.argv[1], sys.argv[2], encoder_factory=factory, num_workers=1,
                                                 batch_size=4, progress=False) for _ in range(2))
    index = ray_embed.read_index(sys.argv[2])
    store = FeatureStore(sys.argv[2])
    keys = index.dropna(subset=["key"])["key"].tolist()
    print(json.dumps({"first": [first.encoded, first.stored, first.failed], "again": [again.encoded, again.stored, again.failed],
                      "store": len(store), "shape": list(store.get(keys).shape), "ids": len(index),
                      "bad": index.loc[index["key"].isna(), ["id", "error_code"]].values.tolist()}))
""")


@pytest.mark.slow
def test_ray_embeddings_fill_the_feature_store_and_resume(tmp_path):
    import json

    shard = image_shard(tmp_path, 10, corrupt=(3,))
    store, built = tmp_path / "store", tmp_path / "built.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(shard), str(store), str(built)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["first"] == [9, 0, 1] and result["again"] == [0, 9, 1]
    assert result["store"] == 9 and result["shape"] == [9, 3] and result["ids"] == 10
    assert result["bad"] == [["img003.jpg", "corrupt"]]
    assert built.read_text().count("built") == 2  # once per actor per run (one actor each run)


def test_ray_address_from_the_environment_is_honoured(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    with socket_closed() as port:
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        with pytest.raises(BatchError, match="cannot reach a Ray cluster"):
            ray_embed.embed_with_ray(tmp_path, tmp_path / "store", encoder_factory=object, progress=False)


def test_cli_reports_a_bad_address_without_a_traceback(tmp_path, capsys):
    with socket_closed() as port:
        code = cli.main(["ray-embed", str(tmp_path), "--store", str(tmp_path / "s"), "--ray-address", f"127.0.0.1:{port}", "--quiet"])
    assert code == 2 and capsys.readouterr().err.startswith("error: cannot reach a Ray cluster")


def test_feature_parts_are_read_by_the_feature_store(tmp_path):
    from aiornot.model.encoders import FeatureStore

    ray_embed.write_features(tmp_path, ["a", "b"], {"embeds": np.eye(2, 4, dtype=np.float32)})
    assert ray_embed.stored_keys(tmp_path) == ["a", "b"]
    np.testing.assert_array_equal(FeatureStore(tmp_path).get(["b"]), np.eye(2, 4)[1:])


class socket_closed:
    """A local port with nothing listening."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def __exit__(self, *args) -> None:
        return None
