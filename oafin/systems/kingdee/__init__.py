"""Kingdee K/3 Cloud (金蝶云星空): reimbursement bills and payments."""
