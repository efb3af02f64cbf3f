from errorkit import ErrorKit, catalogs

detail_kit = ErrorKit(catalog=catalogs.DETAIL_API)  # its codes, in the detail shape
envelope_kit = ErrorKit(catalog=catalogs.ENVELOPE_API)  # its codes, in the envelope shape, with its doc URLs
problem_kit = ErrorKit(format="problem")  # the generic codes, as RFC 9457 bodies
