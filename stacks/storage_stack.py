"""The evaluation bucket and the judge job's execution role: what the pipeline imports.

The bucket is emptied and deleted by `cdk destroy` unless `retain_bucket` is set, so trying the
project leaves nothing billable behind. The judge role lives here (not in the pipeline stack) so
its permissions are reviewed next to the bucket prefix they grant, and so the region check for the
Nova evaluation image fails the very first stack a user deploys.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from novajudge.config import Settings
from novajudge.judge import catalog
from novajudge.layout import (
    OUTPUT_ACCESS_LOG_BUCKET,
    OUTPUT_BUCKET,
    OUTPUT_JUDGE_ROLE,
    RUNS_PREFIX,
    TRAINING_LOG_GROUP,
)
from stacks.constructs import images, nag, trust

#: Server access logs land under this prefix of the log bucket.
ACCESS_LOG_PREFIX = "evaluation-bucket/"


class StorageStack(cdk.Stack):
    """`bucket` (runs, inputs, results) and `judge_role` (assumed by the Nova judge training job)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: object) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Nova Judge Stack: evaluation bucket and the Nova judge job role",
            **kwargs,  # type: ignore[arg-type]
        )
        self.settings = settings
        removal = cdk.RemovalPolicy.RETAIN if settings.retain_bucket else cdk.RemovalPolicy.DESTROY
        auto_delete = not settings.retain_bucket

        self.log_bucket = self._private_bucket(
            "AccessLogs",
            # Ownership is left to CDK: with the feature flag in cdk.json
            # (@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy) delivery is granted by bucket
            # policy and ACLs stay disabled; without it CDK needs ObjectWriter for the log ACL.
            # Always retained, never auto-deleted: S3 delivers server access logs best-effort and
            # up to hours late, so records keep arriving after CDK's auto-delete function has
            # emptied the bucket and DeleteBucket then fails (BucketNotEmpty), failing `cdk
            # destroy`. Stopping the logging first does not help (deliveries already in flight
            # still land). The lifecycle rule empties it over time; the README says how to delete
            # it once the deliveries have settled (OUTPUT_ACCESS_LOG_BUCKET names it).
            removal_policy=cdk.RemovalPolicy.RETAIN,
            auto_delete_objects=False,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=cdk.Duration.days(90))],
        )
        # No S1 acknowledgement is needed: cdk-nag treats a bucket that receives another bucket's
        # access logs in the same stack as compliant (logging the log bucket would loop).

        self.bucket = self._private_bucket(
            "Evaluation",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
            auto_delete_objects=auto_delete,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix=ACCESS_LOG_PREFIX,
            # Versioned: a result overwritten or deleted by mistake can be restored for a while.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(1)
                ),
                s3.LifecycleRule(
                    id="ExpireOldVersions",
                    noncurrent_version_expiration=cdk.Duration.days(settings.noncurrent_version_expiration_days),
                ),
            ],
        )

        self.nova_image_account = images.nova_eval_account(self, "NovaEvalImage")
        self.judge_role = iam.Role(
            self,
            "JudgeRole",
            assumed_by=trust.sagemaker_principal(self, "training-job/*"),
            description="Execution role of the Nova LLM-as-a-judge SageMaker training job",
            inline_policies={"NovaJudgeJob": self._judge_policy()},
        )
        self._acknowledge_judge_wildcards()

        cdk.CfnOutput(self, OUTPUT_BUCKET, value=self.bucket.bucket_name, description="Evaluation bucket")
        cdk.CfnOutput(
            self,
            OUTPUT_ACCESS_LOG_BUCKET,
            value=self.log_bucket.bucket_name,
            description="Access-log bucket (kept by cdk destroy: delete it once late log deliveries settled)",
        )
        cdk.CfnOutput(
            self,
            OUTPUT_JUDGE_ROLE,
            value=self.judge_role.role_arn,
            description="Nova judge job execution role",
        )

    def _private_bucket(self, construct_id: str, **props: Any) -> s3.Bucket:
        """A bucket as every bucket of this stack is: S3-managed encryption, no public access, TLS only."""
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            **props,
        )

    def _judge_policy(self) -> iam.PolicyDocument:
        """What a Nova evaluation training job touches: its run prefix, its image, its logs."""
        runs_objects = self.bucket.arn_for_objects(f"{RUNS_PREFIX}*")
        nova_account = self.nova_image_account.account
        logs_arn = f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}"
        log_group = f"{logs_arn}:log-group:{TRAINING_LOG_GROUP}"
        return iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="ReadRunInputs",
                    actions=["s3:GetObject"],
                    resources=[runs_objects],
                ),
                iam.PolicyStatement(
                    sid="WriteJudgeOutput",
                    actions=["s3:PutObject"],
                    resources=[runs_objects],
                ),
                iam.PolicyStatement(
                    sid="ListRunPrefix",
                    actions=["s3:ListBucket"],
                    resources=[self.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{RUNS_PREFIX}*"]}},
                ),
                iam.PolicyStatement(
                    sid="PullNovaEvaluationImage",
                    actions=images.ECR_PULL_ACTIONS,
                    resources=[images.ecr_repository_arn(nova_account, catalog.NOVA_EVAL_REPOSITORY)],
                ),
                iam.PolicyStatement(
                    sid="EcrLogin",
                    actions=["ecr:GetAuthorizationToken"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="TrainingJobLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    resources=[log_group, f"{log_group}:*"],
                ),
                iam.PolicyStatement(
                    sid="TrainingJobMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_LOG_GROUP}},
                ),
            ]
        )

    def _acknowledge_judge_wildcards(self) -> None:
        """Each remaining wildcard is one AWS cannot scope further; say why, one by one."""
        nag.acknowledge(
            self.judge_role,
            "IAM5",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions (AWS requires Resource *); PutMetricData is limited to the "
            f"{TRAINING_LOG_GROUP} namespace by a condition.",
            findings=["Resource::*"],
        )
        nag.acknowledge(
            self.judge_role,
            "IAM5",
            f"The judge job reads its input and recipe and writes its output under {RUNS_PREFIX}<run_id>/; "
            f"run ids are chosen per execution, so the grant is the {RUNS_PREFIX} prefix, not one key.",
            findings=[
                f"Resource::<{self.get_logical_id(self.bucket.node.default_child)}.Arn>/{RUNS_PREFIX}*"
            ],
        )
        nag.acknowledge(
            self.judge_role,
            "IAM5",
            "SageMaker names one log stream per training job and instance "
            f"(<job>/algo-1-<epoch>); the grant is limited to the {TRAINING_LOG_GROUP} group.",
            findings=[
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                f"{TRAINING_LOG_GROUP}:*"
            ],
        )
