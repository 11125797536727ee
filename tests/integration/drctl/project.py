"""A small project tree for drctl: a plan shaped like infra-global/stacks.yaml over templates
that moto's CloudFormation really creates (SSM parameters, S3 buckets), plus SAM bits."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

ENV = "it"
ACCOUNT = "123456789012"
PRIMARY, SECONDARY = "us-east-1", "us-west-2"


def _marker(extra_params: str = "", value: str = "!Ref Environment", outputs: str = "") -> str:
    """A template holding one SSM parameter named after the stack (unique per stack)."""
    return textwrap.dedent(
        """\
        AWSTemplateFormatVersion: "2010-09-09"
        Parameters:
          Environment: {Type: String}
          Marker: {Type: String}
        %s
        Resources:
          MarkerParameter:
            Type: AWS::SSM::Parameter
            Properties:
              Name: !Sub /it/${Environment}/${Marker}
              Type: String
              Value: %s
        %s"""
    ) % (extra_params, value, outputs)


NETWORK_TEMPLATE = textwrap.dedent(
    """\
    AWSTemplateFormatVersion: "2010-09-09"
    Parameters:
      Environment: {Type: String}
      Marker: {Type: String}
      VpcCidr: {Type: String}
      AzCount: {Type: String, Default: "3"}
      AvailabilityZoneIds:
        Type: CommaDelimitedList
        AllowedPattern: ^[a-z]{2,4}[0-9]-az[0-9]{1,2}$
    Conditions:
      Never: !Equals [a, b]  # the endpoints are read by preflight, never made in moto
    Resources:
      MarkerParameter:
        Type: AWS::SSM::Parameter
        Properties:
          Name: !Sub /it/${Environment}/${Marker}
          Type: String
          Value: !Ref VpcCidr
      SecretsManagerEndpoint:
        Type: AWS::EC2::VPCEndpoint
        Condition: Never
        Properties:
          VpcId: vpc-0
          VpcEndpointType: Interface
          ServiceName: !Sub com.amazonaws.${AWS::Region}.secretsmanager
      SqsEndpoint:
        Type: AWS::EC2::VPCEndpoint
        Condition: Never
        Properties:
          VpcId: vpc-0
          VpcEndpointType: Interface
          ServiceName: !Sub com.amazonaws.${AWS::Region}.sqs
    Outputs:
      VpcId:
        Value: !Sub vpc-${Marker}-${Environment}
      PrivateSubnetIds:
        Value: !Sub subnet-a-${Marker},subnet-b-${Marker}
      LambdaSecurityGroupId:
        Value: !Sub sg-lambda-${Marker}
    """
)
AZ_IDS = {
    "primary": ["use1-az1", "use1-az2", "use1-az4"],
    "secondary": ["usw2-az1", "usw2-az2", "usw2-az3"],
}

TEMPLATES = {
    "network.yaml": NETWORK_TEMPLATE,
    "peering.yaml": _marker(
        "  PeerVpcId: {Type: String}\n  PeerRegion: {Type: String}",
        "!Sub ${PeerVpcId}@${PeerRegion}",
        "Outputs:\n  PeeringConnectionId:\n    Value: !Sub pcx-from-${PeerVpcId}\n",
    ),
    "peering-routes.yaml": _marker(
        "  PeeringConnectionId: {Type: String}", "!Ref PeeringConnectionId"
    ),
    "keys.yaml": _marker(
        outputs="Outputs:\n  KeyArn:\n"
        "    Value: !Sub arn:aws:kms:${AWS::Region}:${AWS::AccountId}:key/${Marker}\n"
    ),
    "tables.yaml": _marker(),
    # aurora-secondary's (the primary has its own below)
    "aurora.yaml": _marker(
        outputs="Outputs:\n  ClusterIdentifier:\n"
        "    Value: !Sub dr-payment-secondary-${Environment}\n"
    ),
    # moto's CloudFormation skips AWS::RDS::GlobalCluster: conftest's emulation makes it on RDS
    "aurora-primary.yaml": _marker(
        "  EngineVersion: {Type: String, Default: 8.0.mysql_aurora.3.10.0}",
        "!Ref EngineVersion",
        "  GlobalCluster:\n"
        "    Type: AWS::RDS::GlobalCluster\n"
        "    Properties:\n"
        "      GlobalClusterIdentifier: !Sub dr-payment-global-${Environment}\n"
        "      Engine: aurora-mysql\n"
        "      EngineVersion: !Ref EngineVersion\n"
        "      DeletionProtection: true\n"
        "Outputs:\n"
        "  ClusterIdentifier:\n"
        "    Value: !Sub dr-payment-primary-${Environment}\n",
    ),
    "dns.yaml": _marker(),
    "budget.yaml": _marker("  BudgetEmail: {Type: String}", "!Ref BudgetEmail"),
    "params.yaml": textwrap.dedent(
        """\
        AWSTemplateFormatVersion: "2010-09-09"
        Parameters:
          Environment: {Type: String}
          Marker: {Type: String}
          SecurityGroupId: {Type: String, Default: sg-0lambda}
        Resources:
          LambdaSecurityGroupParameter:
            Type: AWS::SSM::Parameter
            Properties:
              Name: !Sub /dr-payment/${Environment}/network/lambda-security-group-id
              Type: String
              Value: !Ref SecurityGroupId
          SessionsTableNameParameter:
            Type: AWS::SSM::Parameter
            Properties:
              Name: !Sub /dr-payment/${Environment}/dynamodb/sessions-table-name
              Type: String
              Value: !Sub dr-payment-sessions-${Environment}
          WriterEndpointParameter:
            Type: AWS::SSM::Parameter
            Properties:
              Name: !Sub /dr-payment/${Environment}/aurora/writer-endpoint
              Type: String
              Value: regional-writer.example
        """
    ),
    "buckets.yaml": textwrap.dedent(
        """\
        AWSTemplateFormatVersion: "2010-09-09"
        Parameters:
          Environment: {Type: String}
          Role: {Type: String}
          ReplicaBucketName: {Type: String, Default: ""}
        Resources:
          DocumentsBucket:
            Type: AWS::S3::Bucket
            DeletionPolicy: Retain
            Properties:
              BucketName: !Sub dr-payment-docs-${Role}-${Environment}-${AWS::AccountId}
              VersioningConfiguration: {Status: Enabled}
        Outputs:
          BucketName:
            Value: !Ref DocumentsBucket
        """
    ),
}


def _stack(
    stack_id: str, template: str, role: str, marker: bool = True, **params: object
) -> dict[str, object]:
    parameters: dict[str, object] = {"Environment": "{env}", **params}
    if marker:
        parameters["Marker"] = stack_id
    return {
        "id": stack_id,
        "name": f"dr-payment-{stack_id}-{{env}}",
        "template": template,
        "region": role,
        "parameters": parameters,
    }


def plan_document() -> dict[str, object]:
    ref = lambda stack, output: {"from": stack, "output": output}  # noqa: E731
    stacks = [
        _stack(
            "network-primary",
            "network.yaml",
            "primary",
            VpcCidr="10.10.0.0/16",
            AvailabilityZoneIds=AZ_IDS["primary"],
        ),
        _stack(
            "network-secondary",
            "network.yaml",
            "secondary",
            VpcCidr="10.20.0.0/16",
            AvailabilityZoneIds=AZ_IDS["secondary"],
        ),
        _stack(
            "peering",
            "peering.yaml",
            "primary",
            PeerVpcId=ref("network-secondary", "VpcId"),
            PeerRegion="{secondary_region}",
        ),
        _stack(
            "peering-routes",
            "peering-routes.yaml",
            "secondary",
            PeeringConnectionId=ref("peering", "PeeringConnectionId"),
        ),
        _stack("keys-primary", "keys.yaml", "primary"),
        _stack("keys-secondary", "keys.yaml", "secondary"),
        _stack("data", "tables.yaml", "primary"),
        _stack("buckets-secondary", "buckets.yaml", "secondary", marker=False, Role="secondary"),
        _stack(
            "buckets-primary",
            "buckets.yaml",
            "primary",
            marker=False,
            Role="primary",
            ReplicaBucketName=ref("buckets-secondary", "BucketName"),
        ),
        _stack("aurora-primary", "aurora-primary.yaml", "primary"),
        _stack("aurora-secondary", "aurora.yaml", "secondary"),
        _stack("params-primary", "params.yaml", "primary"),
        _stack("params-secondary", "params.yaml", "secondary"),
        {
            "id": "sam-primary",
            "name": "dr-payment-primary-{env}",
            "kind": "sam",
            "region": "primary",
        },
        {
            "id": "sam-secondary",
            "name": "dr-payment-secondary-{env}",
            "kind": "sam",
            "region": "secondary",
        },
        _stack("dns", "dns.yaml", "primary"),
        _stack("budget", "budget.yaml", "primary"),
    ]
    return {"regions": {"primary": PRIMARY, "secondary": SECONDARY}, "stacks": stacks}


SAM_TEMPLATE = textwrap.dedent(
    """\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Environment: {Type: String, Default: dev}
      RegionRole: {Type: String}
      DeployRevision: {Type: String, Default: ""}
      SessionsTableName:
        Type: AWS::SSM::Parameter::Value<String>
        Default: /dr-payment/dev/dynamodb/sessions-table-name
      ParkedDepthAlarmThreshold: {Type: Number, Default: 100}
      ProcessorReservedConcurrency: {Type: Number, Default: 25}
      HealthReservedConcurrency: {Type: Number, Default: 5}
    Resources:
      PaymentProcessorFunction:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: !Sub dr-payment-processor-${RegionRole}-${Environment}
          ReservedConcurrentExecutions: !Ref ProcessorReservedConcurrency
      HealthFunction:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: !Sub dr-payment-health-${RegionRole}-${Environment}
          ReservedConcurrentExecutions: !Ref HealthReservedConcurrency
    """
)


def write_project(root: Path, *, built: bool = True) -> Path:
    """The tree drctl expects; returns the plan path."""
    import yaml

    infra = root / "infra-global"
    infra.mkdir(parents=True, exist_ok=True)
    for name, body in TEMPLATES.items():
        (infra / name).write_text(body)
    plan = infra / "stacks.yaml"
    plan.write_text(yaml.safe_dump(plan_document(), sort_keys=False))
    (root / "template.yaml").write_text(SAM_TEMPLATE)
    (root / "samconfig.toml").write_text("version = 0.1\n")
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "handler.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    if built:
        build = root / ".aws-sam" / "build"
        build.mkdir(parents=True, exist_ok=True)
        (build / "template.yaml").write_text(SAM_TEMPLATE)
        later = (root / "src" / "handler.py").stat().st_mtime + 10
        os.utime(build / "template.yaml", (later, later))
    return plan
