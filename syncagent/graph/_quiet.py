"""Import the SDK modules that warn at import time, with those warnings silenced.

kiota-abstractions and every generated msgraph request builder define deprecated classes
whose bodies call `warnings.warn`, so the first import of each module emits a
DeprecationWarning about the SDK itself. The builders are imported lazily, on the first
request that needs them, which would make that warning surface in the middle of a read.
Importing the ones this package uses here, once and under a filter, keeps the program and
its tests (which turn warnings into errors) clean.
"""

import importlib
import warnings

_MODULES = (
    "kiota_abstractions.default_query_parameters",
    "msgraph.generated.groups.groups_request_builder",
    "msgraph.generated.groups.item.group_item_request_builder",
    "msgraph.generated.groups.item.members.members_request_builder",
    "msgraph.generated.groups.item.members.graph_user.graph_user_request_builder",
    "msgraph.generated.users.users_request_builder",
    "msgraph.generated.users.item.user_item_request_builder",
    "msgraph.generated.directory.directory_request_builder",
    "msgraph.generated.directory.deleted_items.deleted_items_request_builder",
    "msgraph.generated.directory.deleted_items.item.directory_object_item_request_builder",
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".* is deprecated", category=DeprecationWarning)
    for _name in _MODULES:
        importlib.import_module(_name)
