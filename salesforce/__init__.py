"""The client layer over simple-salesforce: login, describe, SOQL, batched writes. No Beam here."""
