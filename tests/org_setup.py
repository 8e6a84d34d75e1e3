"""docs/org-setup.md's custom fields, as the emulator's org configuration takes them, for the tests' orgs."""

KEY_FIELD = "Beamforce_Key__c"
TIMES_FIELD = "Beamforce_Field_Times__c"
# The custom_fields section of an org configuration (YAML): an org of its own may put users before it.
ORG_SETUP_FIELDS = f"""\
custom_fields:
  Lead:
    - {{name: {KEY_FIELD}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES_FIELD}, type: textarea, length: 131072}}
  Account:
    - {{name: {KEY_FIELD}, type: external_id, length: 255, unique: true}}
    - {{name: {TIMES_FIELD}, type: textarea, length: 131072}}
"""
