"""Local Genesys Cloud SCIM sandbox: a development and test tool, not Genesys Cloud."""
