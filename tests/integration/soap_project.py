"""A throw-away integration project for SOAP tests: the repo's contracts, transforms and canonical model,
with systems and routes that use free loopback ports and in-memory dead letters."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
USERS = {"siebel": "crm-secret", "hotline": "hotline-secret", "billing": "billing-secret"}


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_soap_project(
    tmp: Path,
    billing_url: str,
    listen_port: int,
    *,
    retries: int = 3,
    billing: dict[str, Any] | None = None,
    inline: bool | None = None,
) -> Path:
    """Write a project under ``tmp`` serving the CRM and hotline operations on ``listen_port``.

    ``billing``: more options for both Billing client endpoints (e.g. ``{"tls": {...}}``); ``inline``:
    both listeners' ``listen.inline`` (the option's default when None).
    """
    (tmp / "config").mkdir(parents=True)
    for name in ("transforms", "canonical_model"):
        (tmp / name).symlink_to(REPO / name)
    (tmp / "config" / "contracts").symlink_to(REPO / "config" / "contracts")
    (tmp / "config" / "siebel.yaml").symlink_to(REPO / "config" / "siebel.yaml")  # the Siebel objects
    (tmp / "config" / "settings.yaml").write_text(
        f"data_dir: {tmp / 'var'}\nmonitoring: {{enabled: false}}\n", encoding="utf-8"
    )
    listen: dict[str, Any] = {"host": "127.0.0.1", "port": listen_port}
    if inline is not None:
        listen["inline"] = inline
    client = {
        "address": billing_url,
        "retryable_faults": ["BIL-0503"],
        "timeout": "5s",
        "auth": {"username": "esb", "password_env": "TEST_BILLING_PASSWORD", "mode": "wsse-digest"},
        **(billing or {}),
    }
    systems = {
        "systems": {
            "crm": {
                "name": "CRM",
                "endpoints": {
                    "soap_billing_accounts": {
                        "adapter": "soap",
                        "wsdl": "config/contracts/crm/esb-crm.wsdl",
                        "operation": "SubmitBillingAccount",
                        "message_type": "billing_account.submitted",
                        "listen": {
                            **listen,
                            "path": "/soap/crm",
                            "unwrap": True,
                            "reply_timeout": "10s",
                            "auth": {"users": [{"username": "siebel", "password_env": "TEST_CRM_PASSWORD"}]},
                        },
                    }
                },
            },
            "hotline": {
                "name": "Hotline",
                "endpoints": {
                    "soap_balance": {
                        "adapter": "soap",
                        "wsdl": "config/contracts/hotline/hotline.wsdl",
                        "operation": "QueryBalance",
                        "listen": {
                            **listen,
                            "path": "/soap/hotline",
                            "reply_timeout": "5s",
                            "auth": {
                                "users": [{"username": "hotline", "password_env": "TEST_HOTLINE_PASSWORD"}]
                            },
                        },
                    }
                },
            },
            "billing": {
                "name": "Billing",
                "endpoints": {
                    "create_account": {
                        "adapter": "soap",
                        "wsdl": "config/contracts/billing/billing.wsdl",
                        "operation": "createAccount",
                        **client,
                    },
                    "query_balance": {
                        "adapter": "soap",
                        "wsdl": "config/contracts/billing/billing.wsdl",
                        "operation": "queryBalance",
                        "port": "BillingAccountSoap12Port",
                        **client,
                    },
                },
            },
            "dlq": {
                "name": "DLQ",
                "endpoints": {"billing": {"adapter": "memory"}, "hotline": {"adapter": "memory"}},
            },
        }
    }
    fast = {"max": retries, "backoff": "fixed", "initial": "10ms"}
    routes = {
        "routes": [
            {
                "id": "crm-billing-account-to-billing",
                "from": "crm.soap_billing_accounts",
                "business_keys": {"account_id": "body.id"},
                "steps": [
                    {"transform": "crm/siebel_billing_account_to_canonical"},
                    {"validate": "billing_account.v1"},
                    {"transform": "billing/canonical_to_create_account"},
                ],
                "to": "billing.create_account",
                "on_error": {"redeliver": fast, "dead_letter": "dlq.billing"},
            },
            {
                "id": "hotline-balance-query",
                "from": "hotline.soap_balance",
                "steps": [
                    {"transform": "hotline/query_balance_to_canonical"},
                    {
                        "enrich": {
                            "endpoint": "billing.query_balance",
                            "request": "billing/balance_request",
                            "response": "billing/balance_reply_to_canonical",
                            "into": "billing",
                            "timeout": "5s",
                        }
                    },
                    {"transform": "hotline/balance_to_reply"},
                ],
                "on_error": {"redeliver": fast, "dead_letter": "dlq.hotline"},
            },
        ]
    }
    (tmp / "config" / "systems.yaml").write_text(
        json.dumps(systems, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    (tmp / "routes.yaml").write_text(json.dumps(routes, ensure_ascii=False, indent=1), encoding="utf-8")
    return tmp


def siebel_account(row_id: str, customer: str = "CUST-440100-0001", name: str = "张伟的账户") -> str:
    """Return the body of a SubmitBillingAccount request: one ESB Billing Account SiebelMessage."""
    return f"""<crm:SubmitBillingAccount xmlns:crm="http://esb.telecom.example/crm/v1">
  <sbl:SiebelMessage xmlns:sbl="http://esb.telecom.example/siebel/billing-account" MessageId="{row_id}-M"
      MessageType="Integration Object" IntObjectName="ESB Billing Account"
      IntObjectFormat="Siebel Hierarchical">
    <ListOfESB_spcBilling_spcAccount><Account>
      <Id>{row_id}</Id><Name>{name}</Name><Parent_spcAccount_spcId>{customer}</Parent_spcAccount_spcId>
      <Rating_spcType>Postpaid</Rating_spcType><Credit_spcLimit>100</Credit_spcLimit>
      <Currency_spcCode>CNY</Currency_spcCode><Bill_spcCycle_spcDay>1</Bill_spcCycle_spcDay>
      <Payment_spcMethod>WeChat Pay</Payment_spcMethod>
    </Account></ListOfESB_spcBilling_spcAccount>
  </sbl:SiebelMessage>
</crm:SubmitBillingAccount>"""
