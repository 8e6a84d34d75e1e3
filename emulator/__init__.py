"""A local Salesforce: an HTTPS emulator of the Salesforce APIs the pipeline uses."""
