"""The system under load: `paygate up` as a child, DB observation, fault injection."""
