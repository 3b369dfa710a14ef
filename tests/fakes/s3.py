"""A local S3-compatible server for the tests: moto's server with request signatures
checked. It creates an IAM user with an access key allowed to use one bucket, creates the
bucket, then turns authentication on; from then on every request must carry a valid AWS
Signature Version 4 of that key (or be a presigned URL that has not expired).

    python3 tests/fakes/s3.py PORT BUCKET
prints (as its last line of output) one line of JSON {"endpoint", "bucket", "region", "access_key_id", "secret_access_key"}
once it is ready, and serves until killed.
"""

import json
import os
import sys
import time

# authentication on from the start, but the setup below runs as unauthenticated actions
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "5"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

port = int(sys.argv[1])
bucket = sys.argv[2]
region = "cn-north-1"
endpoint = f"http://127.0.0.1:{port}"
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
server.start()

anonymous = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anonymous)
iam.create_user(UserName="wuye")
policy = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
iam.put_user_policy(UserName="wuye", PolicyName="bucket", PolicyDocument=json.dumps(policy))
key = iam.create_access_key(UserName="wuye")["AccessKey"]
s3 = boto3.client("s3", **anonymous)
s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})

print(
    json.dumps(
        {
            "endpoint": endpoint,
            "bucket": bucket,
            "region": region,
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        }
    ),
    flush=True,
)
while True:
    time.sleep(3600)
