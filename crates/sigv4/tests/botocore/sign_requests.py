"""Signs real SDK calls with botocore (the AWS CLI's signer) and prints them as JSON.

Nothing is sent: a `before-send` hook captures each prepared request and stops the call.
Presigned URLs come from `generate_presigned_url`, including the EKS bearer-token form
(`aws eks get-token`: STS GetCallerIdentity with the `x-k8s-aws-id` header signed).

Output: {"requests": [{"name", "method", "url", "headers": [[k, v]], "body_b64",
"secret", "token"}]}. Prints {"skip": reason} when botocore is not importable.
"""

import base64
import json
import sys

try:
    import botocore
    import botocore.session
    from botocore.auth import _host_from_url
    from botocore.config import Config
except ImportError as e:  # the Rust test skips, saying why
    print(json.dumps({"skip": f"botocore not importable: {e}"}))
    sys.exit(0)

AKID = "AKIAIOSFODNN7EXAMPLE"
SESSION_AKID = "ASIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEBYaD+example/session=token=="


class Captured(Exception):
    pass


def body_bytes(body):
    if body is None:
        return b""
    if hasattr(body, "read"):
        data = body.read()
        return data if isinstance(data, bytes) else data.encode()
    return body if isinstance(body, bytes) else body.encode()


def client(service, region, session_token, **kw):
    s = botocore.session.get_session()
    return s.create_client(
        service,
        region_name=region,
        aws_access_key_id=SESSION_AKID if session_token else AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN if session_token else None,
        config=Config(retries={"max_attempts": 1}, **kw),
    )


def entry(name, method, url, headers, body, session_token):
    return {
        "name": name,
        "method": method,
        "url": url,
        "headers": [[k, v if isinstance(v, str) else v.decode("latin-1")] for k, v in headers],
        "body_b64": base64.b64encode(body).decode(),
        "secret": SECRET,
        "token": TOKEN if session_token else None,
    }


def capture(name, c, call, session_token):
    box = {}

    def before_send(request, **kwargs):
        box["req"] = request
        raise Captured()

    c.meta.events.register("before-send", before_send)
    try:
        call(c)
    except Captured:
        pass
    req = box["req"]
    headers = list(req.headers.items())
    if not any(k.lower() == "host" for k, _ in headers):
        # urllib3 adds Host when sending; botocore signed the same value.
        headers.append(("host", _host_from_url(req.url)))
    return entry(name, req.method, req.url, headers, body_bytes(req.body), session_token)


def eks_token(session_token):
    # What `aws eks get-token` does (awscli/customizations/eks/get_token.py).
    c = client("sts", "us-east-1", session_token)

    def retrieve_id(params, context, **kwargs):
        if "x-k8s-aws-id" in params:
            context["x-k8s-aws-id"] = params.pop("x-k8s-aws-id")

    def inject_id(request, **kwargs):
        if "x-k8s-aws-id" in request.context:
            request.headers["x-k8s-aws-id"] = request.context["x-k8s-aws-id"]

    c.meta.events.register("provide-client-params.sts.GetCallerIdentity", retrieve_id)
    c.meta.events.register("before-sign.sts.GetCallerIdentity", inject_id)
    url = c.generate_presigned_url(
        "get_caller_identity",
        Params={"x-k8s-aws-id": "my-cluster"},
        ExpiresIn=60,
        HttpMethod="GET",
    )
    headers = [("host", _host_from_url(url)), ("x-k8s-aws-id", "my-cluster")]
    return entry("eks get-token (presigned sts)", "GET", url, headers, b"", session_token)


def main():
    out = []
    for tok in (False, True):
        sfx = " +token" if tok else ""
        out.append(capture("sts GetCallerIdentity" + sfx, client("sts", "us-east-1", tok),
                           lambda c: c.get_caller_identity(), tok))
        out.append(capture("sts AssumeRole" + sfx, client("sts", "us-east-1", tok),
                           lambda c: c.assume_role(RoleArn="arn:aws:iam::111111111111:role/S3_Pics",
                                                   RoleSessionName="s1+x/=y"), tok))
        out.append(capture("iam ListUsers" + sfx, client("iam", "us-east-1", tok),
                           lambda c: c.list_users(PathPrefix="/a b/"), tok))
        out.append(capture("eks DescribeCluster odd name" + sfx, client("eks", "us-west-2", tok),
                           lambda c: c.describe_cluster(name="my cluster~€/x"), tok))
        out.append(capture("eks ListClusters query" + sfx, client("eks", "us-west-2", tok),
                           lambda c: c.list_clusters(maxResults=10, nextToken="a+b=/c d~"), tok))
        try:
            out.append(capture("eks-auth AssumeRoleForPodIdentity" + sfx,
                               client("eks-auth", "us-west-2", tok),
                               lambda c: c.assume_role_for_pod_identity(clusterName="c1", token="x.y.z"),
                               tok))
        except botocore.exceptions.UnknownServiceError:
            pass
        out.append(capture("s3 GetObject odd key" + sfx,
                           client("s3", "us-east-1", tok, s3={"addressing_style": "virtual"}),
                           lambda c: c.get_object(Bucket="bucket", Key="photos/a b/€~%2F+x.jpg",
                                                  VersionId="3"), tok))
        out.append(capture("s3 PutObject" + sfx,
                           client("s3", "eu-west-1", tok, s3={"addressing_style": "path"}),
                           lambda c: c.put_object(Bucket="bucket", Key="k//x/./y", Body=b"hello"), tok))
        # Without s3v4 botocore presigns S3 with SigV2, which the twin does not accept.
        s3 = client("s3", "us-east-1", tok, signature_version="s3v4")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "a b/€.txt"},
                                        ExpiresIn=3600)
        out.append(entry("s3 presigned GetObject" + sfx, "GET", url, [("host", _host_from_url(url))],
                         b"", tok))
        out.append(eks_token(tok))
    print(json.dumps({"botocore": botocore.__version__, "requests": out}))


main()
