{#- The logical accounts of the canonical model (normal debit, then normal credit). Hard-coded
    mapping: tests on it are warn-level accepted_values so a new account shows up, not breaks. -#}
{% macro debit_normal_accounts() -%}
    {{ return([
        'AccountsReceivable', 'UnbilledAccountsReceivable', 'Cash', 'IntercompanyReceivable',
        'CreditNotes', 'Refunds', 'Voids', 'BadDebt', 'FxLoss',
    ]) }}
{%- endmacro %}

{% macro credit_normal_accounts() -%}
    {{ return([
        'Revenue', 'DeferredRevenue', 'TaxLiability', 'Recoverables', 'FxGain',
        'IntercompanyPayable',
    ]) }}
{%- endmacro %}
