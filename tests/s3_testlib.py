"""A moto S3 server on 127.0.0.1 for tests and benchmarks (moto is a test dependency only)."""

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from testlib import free_ports  # ROOT: the repository, where commands run


def s3_environment(endpoint, key="testing"):
    """What TensorFlow's (tensorflow-io's) S3 client needs to talk to `endpoint` over plain HTTP."""
    return {
        "S3_ENDPOINT": endpoint,
        "S3_USE_HTTPS": "0",
        "S3_VERIFY_SSL": "0",
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": key,
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextlib.contextmanager
def moto_server(log=subprocess.DEVNULL, key="testing"):
    """Start moto's server on a free port; yields (endpoint URL, boto3 client); stops it after.

    Raises RuntimeError when the server does not accept connections within 10 s.
    """
    import boto3

    (port,) = free_ports()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"moto server did not start on {endpoint}")
        yield (
            endpoint,
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id=key,
                aws_secret_access_key=key,
            ),
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def objects(client, bucket, prefix):
    """{key relative to prefix: bytes} of every object under s3://bucket/prefix/."""
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    return {
        item["Key"][len(prefix.rstrip("/")) + 1 :]: (
            client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        )
        for item in listing.get("Contents", [])
    }


def local_files(directory):
    """{path relative to directory: bytes} of every file under a local directory."""
    directory = Path(directory)
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }
