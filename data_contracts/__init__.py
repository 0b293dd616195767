"""Data contracts of the standard entities (DESIGN.md, "Data contracts").

- ``checks``: pure checks for Chinese finance fields (credit code, resident ID,
  Luhn, invoice formats, VAT rates, tax arithmetic, periods).
- ``masking``: masking of personal ids, bank cards and phones for reports and logs.
- ``frames``: ``to_frame`` builds a frame of an entity with the standard dtypes.
- ``models``: the pandera models, one per entity.
- ``invoices``: the invoice rules, vectorised.
- ``validate``: ``validate_records`` quarantines failing records; ``check_invoices``
  reports failing invoices.

Modules are imported one by one (``from data_contracts.masking import mask_phone``)
so that a report or a log formatter does not import pandera.
"""
