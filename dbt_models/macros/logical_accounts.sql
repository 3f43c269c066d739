{#- The logical accounts of the canonical model (normal debit, then normal credit), as in
    q2c_pipeline/accounting/accounts.py. Hard-coded mapping: tests on it are warn-level
    accepted_values so a new account shows up, not breaks. -#}
{% macro debit_normal_accounts() -%}
    {{ return([
        'AccountsReceivable', 'UnbilledAccountsReceivable', 'ContractAsset', 'Cash',
        'IntercompanyReceivable', 'CreditNotes', 'Refunds', 'Voids', 'BadDebt',
        'CreditLossExpense', 'FxLoss',
    ]) }}
{%- endmacro %}

{% macro credit_normal_accounts() -%}
    {{ return([
        'Revenue', 'DeferredRevenue', 'RefundLiability', 'CustomerCredit', 'TaxLiability',
        'Recoverables', 'FxGain', 'IntercompanyPayable',
    ]) }}
{%- endmacro %}

{#- The four accounts of the contract position (ASC 606-10-45-1..4 and the refund liability of
    606-10-32-10 a cancellation turns it into). Net contract position = DeferredRevenue +
    RefundLiability - ContractAsset - UnbilledAccountsReceivable: credit-normal accounts add,
    debit-normal ones subtract, so on every one of them a line moves it by credit - debit. -#}
{% macro contract_position_accounts() -%}
    {{ return([
        'DeferredRevenue', 'RefundLiability', 'ContractAsset', 'UnbilledAccountsReceivable',
    ]) }}
{%- endmacro %}

{#- The contra-revenue accounts: reductions of revenue (credit notes, refunds, voids and, under
    bad_debt_presentation: contra_revenue, write-offs; by default a write-off is
    CreditLossExpense, an expense, not a reduction of revenue), debit-normal. -#}
{% macro contra_revenue_accounts() -%}
    {{ return(['CreditNotes', 'Refunds', 'Voids', 'BadDebt']) }}
{%- endmacro %}

{#- The four accounts as a SQL list literal: in ({{ sql_list(contract_position_accounts()) }}) -#}
{% macro sql_list(values) -%}
    '{{ values | join("', '") }}'
{%- endmacro %}
