"""Custom actions (--actions_config): which Segment events become which Salesforce operations."""
