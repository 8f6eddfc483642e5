import streamlit as st

st.title("tokens")
st.info("Coming next: this page lands with its own issue.")
