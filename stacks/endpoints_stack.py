"""The two candidate models (A and B) as SageMaker real-time endpoints serving the TGI container.

This is the expensive stack (two GPU instances billed every hour they exist), so it stands alone:
nothing imports its outputs, and `cdk destroy NovaJudge-Endpoints` removes it while the bucket,
results and pipeline stay. Endpoint names come from `Settings.endpoint_name`, which the pipeline
derives the same way instead of importing them.
"""

from __future__ import annotations

from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from novajudge.config import Settings
from novajudge.layout import endpoint_output
from stacks.constructs import images, nag, trust

Which = Literal["A", "B"]
#: Send each request to the instance with the fewest requests in flight (the notebooks' choice).
ROUTING_STRATEGY = "LEAST_OUTSTANDING_REQUESTS"
#: SageMaker writes endpoint container logs to /aws/sagemaker/Endpoints/<endpoint name>.
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
#: Namespace of the per-instance metrics (CPU, GPU, disk) that the endpoint publishes as its role.
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


class EndpointsStack(cdk.Stack):
    """Endpoint A and B, one `settings.endpoint_instance_type` instance each, and their role."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: object) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Nova Judge Stack: models A and B on SageMaker TGI endpoints (billed hourly)",
            **kwargs,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.image_uri, self.image_account = images.tgi_image(self, "TgiImage", settings.tgi_image_version)
        self.role = iam.Role(
            self,
            "ModelRole",
            # Models and endpoints assume it: any SageMaker resource of this account, none elsewhere
            # (if-exists conditions: AWS does not document the source keys for hosting).
            assumed_by=trust.sagemaker_principal(self, "*", keys_documented=False),
            description="Execution role of the candidate model endpoints (TGI image pull, logs, metrics)",
            inline_policies={"CandidateModels": self._model_policy()},
        )
        self._acknowledge_role_wildcards()

        self.endpoints: dict[Which, sagemaker.CfnEndpoint] = {}
        self.configs: dict[Which, sagemaker.CfnEndpointConfig] = {}
        for which in ("A", "B"):
            self.configs[which] = self._config(which)
            if settings.endpoints_mode == "per_run":
                # Models and configs cost nothing; the state machine creates the endpoints per run.
                continue
            endpoint = sagemaker.CfnEndpoint(
                self,
                f"Endpoint{which}",
                endpoint_name=settings.endpoint_name(which),
                endpoint_config_name=self.configs[which].attr_endpoint_config_name,
            )
            self.endpoints[which] = endpoint
            cdk.CfnOutput(
                self,
                endpoint_output(which, "Name"),
                value=endpoint.attr_endpoint_name,
                description=f"Endpoint of model {which} ({settings.model_id(which)})",
            )
            cdk.CfnOutput(
                self,
                endpoint_output(which, "Arn"),
                value=endpoint.ref,
                description=f"ARN of the endpoint of model {which}",
            )

    def _log_group_arns(self) -> list[str]:
        arns = []
        for which in ("A", "B"):
            group = (
                f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:log-group:"
                f"{ENDPOINT_LOG_GROUP_PREFIX}{self.settings.endpoint_name_pattern(which)}"
            )
            arns += [group, f"{group}:*"]
        return arns

    def _model_policy(self) -> iam.PolicyDocument:
        """The endpoints pull one image, write their own log groups and their instance metrics."""
        return iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="PullTgiImage",
                    actions=images.ECR_PULL_ACTIONS,
                    resources=[images.ecr_repository_arn(self.image_account.account, images.TGI_REPOSITORY)],
                ),
                iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
                iam.PolicyStatement(
                    sid="EndpointLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    resources=self._log_group_arns(),
                ),
                iam.PolicyStatement(
                    sid="EndpointMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": ENDPOINT_METRICS_NAMESPACE}},
                ),
            ]
        )

    def _acknowledge_role_wildcards(self) -> None:
        nag.acknowledge(
            self.role,
            "IAM5",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions (AWS requires Resource *); PutMetricData is limited to the "
            "/aws/sagemaker/Endpoints namespace by a condition.",
            findings=["Resource::*"],
        )
        streams = [arn for arn in self._log_group_arns() if arn.endswith(":*")]
        nag.acknowledge(
            self.role,
            "IAM5",
            "SageMaker names one log stream per endpoint variant and instance; the grant is limited "
            "to the log groups of these two endpoints.",
            findings=[
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                + arn.rsplit(":log-group:", 1)[1]
                for arn in streams
            ],
        )

    def _config(self, which: Which) -> sagemaker.CfnEndpointConfig:
        s = self.settings
        gpus = s.model_a_num_gpus if which == "A" else s.model_b_num_gpus
        model = sagemaker.CfnModel(
            self,
            f"Model{which}",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=self.image_uri,
                environment={
                    "HF_MODEL_ID": s.model_id(which),
                    "SM_NUM_GPUS": str(gpus),
                    "MAX_INPUT_TOKENS": str(s.max_input_tokens),
                    "MAX_TOTAL_TOKENS": str(s.max_total_tokens),
                },
            ),
        )
        # Deliberate, and documented in the README's security notes (cdk-nag's AwsSolutions SM1-SM3
        # concern notebook instances only, so nothing is acknowledged here):
        # - no network isolation and no VPC: TGI downloads the weights from the Hugging Face Hub
        #   at container start (HF_MODEL_ID); isolation would keep the endpoint from ever becoming
        #   healthy, and a VPC would need a NAT gateway (billed hourly) for a short-lived comparison.
        # Named from the settings (`Settings.endpoint_config_name`) so the pipeline, which never
        # imports from this stack, can create per-run endpoints from it. No KmsKeyId: the
        # ml.g5/g6/g6e instances have NVMe instance storage, which SageMaker encrypts with a
        # hardware key and for which it refuses a KmsKeyId; only public weights are stored there.
        health_check_seconds, _why = s.startup_health_check_seconds(which)
        return sagemaker.CfnEndpointConfig(
            self,
            f"Config{which}",
            endpoint_config_name=s.endpoint_config_name(which),
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name="AllTraffic",
                    model_name=model.attr_model_name,
                    initial_instance_count=1,
                    initial_variant_weight=1.0,
                    instance_type=s.endpoint_instance_type,
                    container_startup_health_check_timeout_in_seconds=health_check_seconds,
                    routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                        routing_strategy=ROUTING_STRATEGY
                    ),
                )
            ],
        )
