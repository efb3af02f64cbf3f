from errorkit import ErrorKit, catalogs

detail_kit = ErrorKit(catalog=catalogs.DETAIL_API)  # the Ontora API's errors, in the detail format
envelope_kit = ErrorKit(catalog=catalogs.ENVELOPE_API)  # the Orq.ai API's errors, in the envelope format, its doc URLs
problem_kit = ErrorKit(format="problem")  # a new API: the generic codes, as RFC 9457 bodies
