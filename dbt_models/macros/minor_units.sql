{#- Decimals of a currency's minor unit (ISO 4217), as q2c_pipeline/core/money.py states them:
    0 for the zero-decimal currencies, 3 for the three-decimal ones, else 2. -#}
{% macro minor_exponent(currency) -%}
    case
        when {{ currency }} in ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG',
                                'RWF', 'UGX', 'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF') then 0
        when {{ currency }} in ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') then 3
        else 2
    end
{%- endmacro %}
