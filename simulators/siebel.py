"""SiebelMessage XML as the Siebel EAI sends it: the "Order Entry (Sales)" integration object.

Two real styles are produced: fields as child elements (the EAI XML converter) and fields as attributes
(a property-set converter), in UTF-8 or GBK. Tag names use Siebel's escapes (``_spc`` for a space,
``_lpr``/``_rpr`` for parentheses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

INT_OBJECT = "Order Entry (Sales)"
ORDERS_LIST = "ListOfOrder_spcEntry_spc_lprSales_rpr"
ORDER = "Order_spcEntry_spc-_spcOrders"
ITEMS_LIST = "ListOfOrder_spcEntry_spc-_spcLine_spcItems"
ITEM = "Order_spcEntry_spc-_spcLine_spcItems"


def siebel_tag(name: str) -> str:
    """Escape a Siebel field name as a tag: ``Order Number`` -> ``Order_spcNumber``."""
    return name.replace(" ", "_spc").replace("(", "_lpr").replace(")", "_rpr")


@dataclass
class LineItem:
    """One order line: action code (Add/Update/Delete/-), product, price, XA attributes."""

    line: int
    action: str
    product_id: str
    product: str
    price: str | None = "0"
    price_type: str = "Recurring"
    quantity: int = 1
    attributes: dict[str, str] = field(default_factory=dict)
    service_address: str = ""  # where the line's service is installed (a standard address's text)


@dataclass
class SiebelOrder:
    """The fields of one Siebel order that the simulated CRM fills in."""

    row_id: str
    number: str
    account_id: str
    account_name: str
    billing_account_id: str
    channel: str = "Store"
    status: str = "Submitted"
    priority: str = "3-Medium"
    order_type: str = "Sales Order"
    order_date: str = "11/25/2026 14:03:00"
    currency: str = "CNY"
    comments: str = ""
    items: list[LineItem] = field(default_factory=list)
    int_object: str = INT_OBJECT

    def fields(self) -> dict[str, str]:
        """Return the order's Siebel fields by their repository names."""
        return {
            "Id": self.row_id,
            "Order Number": self.number,
            "Order Type": self.order_type,
            "Status": self.status,
            "Priority": self.priority,
            "Channel": self.channel,
            "Order Date": self.order_date,
            "Account Id": self.account_id,
            "Account": self.account_name,
            "Billing Account Id": self.billing_account_id,
            "Currency Code": self.currency,
            "Comments": self.comments,
        }


def _item_fields(item: LineItem, order: SiebelOrder) -> dict[str, str]:
    fields = {
        "Id": f"{order.row_id}-{item.line}",
        "Line Number": str(item.line),
        "Action Code": item.action,
        "Product Id": item.product_id,
        "Product": item.product,
        "Quantity": str(item.quantity),
        "Price Type": item.price_type,
    }
    if item.price is not None:
        fields["Net Price"] = item.price
    if item.service_address:
        fields["Service Address"] = item.service_address
    return fields


def _as_elements(fields: dict[str, str], indent: str) -> str:
    return "".join(
        f"{indent}<{siebel_tag(k)}>{escape(v)}</{siebel_tag(k)}>\n" for k, v in fields.items() if v != ""
    )


def _as_attributes(fields: dict[str, str]) -> str:
    return "".join(f" {siebel_tag(k)}={quoteattr(v)}" for k, v in fields.items() if v != "")


def _xa(item: LineItem, indent: str, attributes_style: bool) -> str:
    if not item.attributes:
        return ""
    rows = []
    for name, value in item.attributes.items():
        if attributes_style:
            rows.append(f"{indent}  <OrderItemXA Name={quoteattr(name)} Value={quoteattr(value)}/>\n")
        else:
            pair = f"<Name>{escape(name)}</Name><Value>{escape(value)}</Value>"
            rows.append(f"{indent}  <OrderItemXA>{pair}</OrderItemXA>\n")
    return f"{indent}<ListOfOrderItemXA>\n{''.join(rows)}{indent}</ListOfOrderItemXA>\n"


def siebel_order_xml(order: SiebelOrder, *, encoding: str = "UTF-8", attributes: bool = False) -> bytes:
    """Return ``order`` as SiebelMessage bytes in ``encoding`` (UTF-8 or GBK)."""
    fields = order.fields()
    items = []
    for item in order.items:
        ifields = _item_fields(item, order)
        if attributes:
            xa = _xa(item, "          ", True)
            items.append(f"        <{ITEM}{_as_attributes(ifields)}>\n{xa}        </{ITEM}>\n")
        else:
            items.append(
                f"        <{ITEM}>\n{_as_elements(ifields, '          ')}{_xa(item, '          ', False)}"
                f"        </{ITEM}>\n"
            )
    items_xml = f"      <{ITEMS_LIST}>\n{''.join(items)}      </{ITEMS_LIST}>\n" if items else ""
    if attributes:
        order_xml = f"    <{ORDER}{_as_attributes(fields)}>\n{items_xml}    </{ORDER}>\n"
    else:
        order_xml = f"    <{ORDER}>\n{_as_elements(fields, '      ')}{items_xml}    </{ORDER}>\n"
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<SiebelMessage MessageId="{escape(order.row_id)}" MessageType="Integration Object" '
        f'IntObjectName={quoteattr(order.int_object)} IntObjectFormat="Siebel Hierarchical">\n'
        f"  <{ORDERS_LIST}>\n{order_xml}  </{ORDERS_LIST}>\n</SiebelMessage>\n"
    )
    return text.encode("gb18030" if encoding.upper() == "GBK" else encoding)


def siebel_billing_account_request(
    row_id: str, customer: str = "CUST-440100-0001", name: str = "张伟的账户", credit_limit: str = "100"
) -> str:
    """Return a SubmitBillingAccount request body: one "ESB Billing Account" SiebelMessage."""
    return f"""<crm:SubmitBillingAccount xmlns:crm="http://esb.telecom.example/crm/v1">
  <sbl:SiebelMessage xmlns:sbl="http://esb.telecom.example/siebel/billing-account"
      MessageId="{escape(row_id)}-M" MessageType="Integration Object" IntObjectName="ESB Billing Account"
      IntObjectFormat="Siebel Hierarchical">
    <ListOfESB_spcBilling_spcAccount><Account>
      <Id>{escape(row_id)}</Id><Name>{escape(name)}</Name>
      <Parent_spcAccount_spcId>{escape(customer)}</Parent_spcAccount_spcId>
      <Rating_spcType>Postpaid</Rating_spcType><Credit_spcLimit>{escape(credit_limit)}</Credit_spcLimit>
      <Currency_spcCode>CNY</Currency_spcCode><Bill_spcCycle_spcDay>1</Bill_spcCycle_spcDay>
      <Payment_spcMethod>WeChat Pay</Payment_spcMethod>
    </Account></ListOfESB_spcBilling_spcAccount>
  </sbl:SiebelMessage>
</crm:SubmitBillingAccount>"""
