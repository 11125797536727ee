"""Templates over CloudFormation's 51,200-byte TemplateBody limit go through S3.

drctl keeps them in one bucket per region, dr-payment-artifacts-{role}-{env}-{account}, made on
first need (private, 30-day expiry) and deleted by `drctl teardown`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from ops.drctl.context import Context
from ops.drctl.plan import Plan, StackSpec
from ops.drctl.template import Template

MAX_TEMPLATE_BODY = 51_200


def artifacts_bucket(plan: Plan, role: str) -> str:
    return f"dr-payment-artifacts-{role}-{plan.env}-{plan.account}"


def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def _create_bucket(s3: Any, bucket: str, region: str, env: str) -> None:
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **({"CreateBucketConfiguration": location} if location else {}))
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_tagging(
        Bucket=bucket,
        Tagging={
            "TagSet": [
                {"Key": "project", "Value": "dr-payment"},
                {"Key": "environment", "Value": env},
                {"Key": "managed-by", "Value": "drctl"},
            ]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-templates",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "templates/"},
                    "Expiration": {"Days": 30},
                }
            ]
        },
    )


def template_source(
    ctx: Context, plan: Plan, spec: StackSpec, template: Template, *, may_create: bool
) -> dict[str, str] | None:
    """TemplateBody or TemplateURL for the change set; None if it needs a bucket not allowed."""
    if template.size <= MAX_TEMPLATE_BODY:
        return {"TemplateBody": template.body}
    s3 = ctx.aws.client("s3", spec.region)
    bucket = artifacts_bucket(plan, spec.role)
    if not _bucket_exists(s3, bucket):
        if not may_create:
            return None
        ctx.console.progress(f"    creating artifacts bucket {bucket} ({spec.region})")
        _create_bucket(s3, bucket, spec.region, plan.env)
    digest = hashlib.sha256(template.body.encode("utf-8")).hexdigest()[:16]
    key = f"templates/{spec.name}/{digest}.yaml"
    s3.put_object(Bucket=bucket, Key=key, Body=template.body.encode("utf-8"))
    ctx.console.progress(f"    {template.size} bytes > {MAX_TEMPLATE_BODY}: s3://{bucket}/{key}")
    return {"TemplateURL": f"https://{bucket}.s3.{spec.region}.amazonaws.com/{key}"}
