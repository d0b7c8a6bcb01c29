"""Sample ACM certificates: the sandbox holds an ISSUED certificate at each ARN the examples
name, so `spotecs up --sandbox -f examples/production.yaml` comes up end to end. They are
labelled as samples (domain `*.sample.spotecs.invalid`, tag `spotecs:sandbox-sample`) and exist
only in the sandbox; against real AWS, the stack file must name a certificate of your own.

ACM ARNs are `arn:aws:acm:<region>:<account>:certificate/<id>`
(https://docs.aws.amazon.com/acm/latest/userguide/authen-overview.html#acm-resources-operations);
a load balancer accepts only an ISSUED certificate of its own region
(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/https-listener-certificates.html).
"""

from __future__ import annotations

# The ARN `examples/production.yaml` names (moto's default account, the example's region).
SAMPLE_CERTIFICATE_ARNS = ("arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",)
SAMPLE_DOMAIN = "*.sample.spotecs.invalid"
SAMPLE_TAG = {"Key": "spotecs:sandbox-sample", "Value": "sample certificate of the spotecs sandbox, not a real one"}


def install() -> None:
    """Put each sample certificate into moto's ACM state (idempotent)."""
    from moto.acm.models import CertBundle, acm_backends

    for arn in SAMPLE_CERTIFICATE_ARNS:
        _, _, _, region, account, _ = arn.split(":", 5)
        backend = acm_backends[account][region]
        if arn in backend._certificates:
            continue
        generated = CertBundle.generate_cert(SAMPLE_DOMAIN, account_id=account, region=region)
        # A generated AMAZON_ISSUED certificate starts PENDING_VALIDATION; the sample is ready.
        sample = CertBundle(
            account_id=account,
            certificate=generated.cert,
            private_key=generated.key,
            region=region,
            arn=arn,
            cert_type="AMAZON_ISSUED",
            cert_status="ISSUED",
        )
        backend._certificates[arn] = sample
        backend.add_tags_to_certificate(arn, [SAMPLE_TAG])
