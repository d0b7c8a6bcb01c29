"""Fills for moto's IAM: service-linked roles named as AWS names them, and
GetAccountAuthorizationDetails answering like AWS (URL-encoded trust policies, pages).

CreateServiceLinkedRole (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html)
makes the role each service documents (ECS: "AWSServiceRoleForECS",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html); moto
derives "AWSServiceRoleForecs" from the service name. A second create of the same role fails in
AWS with "InvalidInput: Service role name ... has been taken in this account, please try a
different suffix."; moto makes a second role of the same name.

GetAccountAuthorizationDetails
(https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html):
"Policies returned by this operation are URL-encoded compliant with RFC 3986", and the SDKs
decode them (botocore's `json_decode_policies` URL-decodes, then parses, every
policyDocumentType). moto URL-encodes the inline policies but sends each role's
AssumeRolePolicyDocument as plain JSON, which botocore's decoding would garble wherever the
document holds a '%'. And AWS answers in pages of MaxItems (default 100, at most 1000) with
IsTruncated and Marker; moto answers everything at once, so a reader that ignored the pages
would pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The role names AWS gives (each service's page on its service-linked role).
SERVICE_LINKED_ROLE_NAMES = {
    "ecs.amazonaws.com": "AWSServiceRoleForECS",
    "autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling",
    "ecs.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_ECSService",
    "elasticloadbalancing.amazonaws.com": "AWSServiceRoleForElasticLoadBalancing",
}


def iam_service_linked_role_names(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.iam.exceptions import InvalidInput

    def create_service_linked_role(self: Any, service_name: str, description: str, suffix: str) -> Any:
        name = SERVICE_LINKED_ROLE_NAMES.get(service_name)
        if name is None:
            return original(self, service_name, description, suffix)
        name = f"{name}_{suffix}" if suffix else name
        if any(r.name == name for r in self.roles.values()):
            raise InvalidInput(
                f"Service role name {name} has been taken in this account, please try a different suffix."
            )
        role = original(self, service_name, description, suffix)
        # moto keys roles by id: renaming the role renames it everywhere.
        role.name = name
        return role

    create_service_linked_role.__wrapped__ = original  # type: ignore[attr-defined]
    return create_service_linked_role


# Where moto's serializer meets each role's trust policy in a GetAccountAuthorizationDetails
# answer (its RESPONSE_KEY_PATH_TO_TRANSFORMER keys: paths of the answer's shapes).
_DETAILS = "GetAccountAuthorizationDetailsResponse.RoleDetailList.RoleDetail"
ACCOUNT_DETAILS_TRUST_POLICIES = (
    f"{_DETAILS}.AssumeRolePolicyDocument",
    f"{_DETAILS}.InstanceProfileList.InstanceProfile.Roles.Role.AssumeRolePolicyDocument",
)
ACCOUNT_DETAILS_LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
ACCOUNT_DETAILS_PAGE = 100  # AWS's default MaxItems


def iam_account_details_in_pages(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's GetAccountAuthorizationDetails handler: MaxItems entries per answer (users,
    groups, roles, then policies, as one sequence), IsTruncated and a Marker for the rest."""
    from moto.core.responses import ActionResult

    def get_account_authorization_details(self: Any) -> Any:
        whole = original(self).result
        entries = [(key, item) for key in ACCOUNT_DETAILS_LISTS for item in whole.get(key) or []]
        start = int(self._get_param("Marker") or 0)
        size = int(self._get_param("MaxItems") or ACCOUNT_DETAILS_PAGE)
        page = entries[start : start + size]
        answer: dict[str, Any] = {key: [item for k, item in page if k == key] for key in ACCOUNT_DETAILS_LISTS}
        answer["IsTruncated"] = start + size < len(entries)
        if answer["IsTruncated"]:
            answer["Marker"] = str(start + size)
        return ActionResult(answer)

    get_account_authorization_details.__wrapped__ = original  # type: ignore[attr-defined]
    return get_account_authorization_details


def install(wrap: Callable[[type, str, Callable[[Any], Any]], None]) -> None:
    from moto.core.serialize import url_encode
    from moto.iam.models import IAMBackend
    from moto.iam.responses import IamResponse

    wrap(IAMBackend, "create_service_linked_role", iam_service_linked_role_names)
    wrap(IamResponse, "get_account_authorization_details", iam_account_details_in_pages)
    for path in ACCOUNT_DETAILS_TRUST_POLICIES:
        IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER.setdefault(path, url_encode)
